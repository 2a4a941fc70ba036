"""Write the SYNTHETIC sample corpus under examples/multiclinsum_sample (MultiClinSum layout).

Every case is invented from templates below: no real patient, no real case report.
The corpus exists so that the demo and the tests have en/es/fr/pt case reports of
realistic length (1-3k characters) with accents. Deterministic: run it again and the
files come out byte-identical.

    python scripts/make_sample_corpus.py [OUT_DIR]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

# (complaint, history, finding, test, result, diagnosis, treatment, outcome) per language
SCENARIOS = {
    "en": [
        (
            "fever, productive cough and pleuritic chest pain",
            "type 2 diabetes mellitus",
            "crackles and bronchial breathing at the right lung base",
            "A chest radiograph",
            "a dense consolidation of the right lower lobe with a small parapneumonic effusion",
            "community-acquired pneumonia",
            "intravenous ceftriaxone and oral azithromycin",
            "became afebrile within 72 hours and the cough gradually improved",
        ),
        (
            "migratory abdominal pain localising to the right iliac fossa, nausea and anorexia",
            "no relevant chronic disease",
            "rebound tenderness and guarding in the right lower quadrant",
            "Abdominal ultrasound",
            "a non-compressible appendix of 11 mm with periappendiceal fat stranding",
            "acute appendicitis",
            "laparoscopic appendectomy under prophylactic cefazolin and metronidazole",
            "recovered without surgical complications and tolerated a normal diet on the second day",
        ),
        (
            "sudden dyspnoea and left calf swelling after a long-haul flight",
            "oral contraceptive use and obesity",
            "tachypnoea, a swollen tender left calf and no abnormal breath sounds",
            "Computed tomography pulmonary angiography",
            "filling defects in both lower-lobe pulmonary arteries without right ventricular dilatation",
            "acute pulmonary embolism with deep vein thrombosis",
            "low-molecular-weight heparin followed by apixaban",
            "had progressively less dyspnoea and no longer needed supplemental oxygen",
        ),
        (
            "polyuria, polydipsia, vomiting and drowsiness",
            "type 1 diabetes mellitus with poor adherence to insulin",
            "dry mucous membranes, Kussmaul breathing and a fruity odour of the breath",
            "Arterial blood gas analysis",
            "a pH of 7.08, bicarbonate of 6 mmol/L, glucose of 32 mmol/L and ketonaemia of 5.8 mmol/L",
            "diabetic ketoacidosis",
            "intravenous fluids, a fixed-rate insulin infusion and potassium replacement",
            "had the acidosis resolved within 18 hours and returned to subcutaneous insulin",
        ),
        (
            "sudden right-sided weakness and difficulty speaking",
            "hypertension and atrial fibrillation without anticoagulation",
            "right hemiparesis, right facial droop and expressive aphasia",
            "Computed tomography angiography of the head",
            "an occlusion of the left middle cerebral artery without haemorrhage",
            "acute ischaemic stroke",
            "intravenous thrombolysis and mechanical thrombectomy",
            "regained most strength in the right arm and speech improved with therapy",
        ),
        (
            "fever with chills, dysuria and right flank pain",
            "recurrent urinary tract infections",
            "costovertebral angle tenderness on the right side",
            "Renal ultrasound",
            "a mildly enlarged right kidney without hydronephrosis or abscess",
            "acute pyelonephritis caused by Escherichia coli",
            "intravenous ceftriaxone switched to oral ciprofloxacin according to susceptibility",
            "had negative blood cultures after 48 hours and the flank pain subsided",
        ),
        (
            "progressive exertional dyspnoea, orthopnoea and ankle oedema",
            "ischaemic heart disease with a previous myocardial infarction",
            "elevated jugular venous pressure, bibasal crackles and pitting oedema to the knees",
            "Transthoracic echocardiography",
            "a dilated left ventricle with an ejection fraction of 30% and moderate mitral regurgitation",
            "decompensated heart failure with reduced ejection fraction",
            "intravenous furosemide, then sacubitril-valsartan, bisoprolol and spironolactone",
            "lost 6 kg of fluid and could walk on the ward without dyspnoea",
        ),
        (
            "a painful vesicular rash on the left side of the chest preceded by burning pain",
            "chronic lymphocytic leukaemia",
            "grouped vesicles on an erythematous base following the left T5 dermatome",
            "Polymerase chain reaction of vesicle fluid",
            "varicella-zoster virus DNA",
            "herpes zoster in an immunocompromised patient",
            "intravenous aciclovir and pregabalin for neuropathic pain",
            "had crusting of all lesions after one week with no dissemination",
        ),
    ],
    "es": [
        (
            "fiebre, tos productiva y dolor torácico pleurítico",
            "diabetes mellitus tipo 2",
            "crepitantes y soplo tubárico en la base pulmonar derecha",
            "La radiografía de tórax",
            "una consolidación densa del lóbulo inferior derecho con un pequeño derrame paraneumónico",
            "neumonía adquirida en la comunidad",
            "ceftriaxona intravenosa y azitromicina oral",
            "quedó afebril en 72 horas y la tos mejoró progresivamente",
        ),
        (
            "dolor abdominal migratorio hacia la fosa ilíaca derecha, náuseas y anorexia",
            "ninguna enfermedad crónica relevante",
            "rebote positivo y defensa en el cuadrante inferior derecho",
            "La ecografía abdominal",
            "un apéndice no compresible de 11 mm con alteración de la grasa periapendicular",
            "apendicitis aguda",
            "apendicectomía laparoscópica con profilaxis de cefazolina y metronidazol",
            "se recuperó sin complicaciones quirúrgicas y toleró la dieta al segundo día",
        ),
        (
            "disnea súbita y tumefacción de la pantorrilla izquierda tras un vuelo largo",
            "uso de anticonceptivos orales y obesidad",
            "taquipnea, una pantorrilla izquierda tumefacta y dolorosa y auscultación normal",
            "La angiotomografía pulmonar",
            "defectos de repleción en ambas arterias pulmonares de los lóbulos inferiores sin dilatación del ventrículo derecho",
            "tromboembolismo pulmonar agudo con trombosis venosa profunda",
            "heparina de bajo peso molecular seguida de apixabán",
            "presentó cada vez menos disnea y dejó de necesitar oxígeno",
        ),
        (
            "poliuria, polidipsia, vómitos y somnolencia",
            "diabetes mellitus tipo 1 con mala adherencia a la insulina",
            "mucosas secas, respiración de Kussmaul y aliento afrutado",
            "La gasometría arterial",
            "un pH de 7,08, bicarbonato de 6 mmol/L, glucemia de 32 mmol/L y cetonemia de 5,8 mmol/L",
            "cetoacidosis diabética",
            "sueroterapia intravenosa, perfusión de insulina a dosis fija y reposición de potasio",
            "resolvió la acidosis en 18 horas y volvió a la insulina subcutánea",
        ),
        (
            "debilidad súbita del hemicuerpo derecho y dificultad para hablar",
            "hipertensión arterial y fibrilación auricular sin anticoagulación",
            "hemiparesia derecha, desviación de la comisura bucal y afasia de expresión",
            "La angiotomografía cerebral",
            "una oclusión de la arteria cerebral media izquierda sin hemorragia",
            "ictus isquémico agudo",
            "trombólisis intravenosa y trombectomía mecánica",
            "recuperó gran parte de la fuerza del brazo derecho y el lenguaje mejoró con rehabilitación",
        ),
        (
            "fiebre con escalofríos, disuria y dolor en el flanco derecho",
            "infecciones urinarias de repetición",
            "puñopercusión renal derecha positiva",
            "La ecografía renal",
            "un riñón derecho levemente aumentado de tamaño sin hidronefrosis ni absceso",
            "pielonefritis aguda por Escherichia coli",
            "ceftriaxona intravenosa cambiada a ciprofloxacino oral según el antibiograma",
            "tuvo hemocultivos negativos a las 48 horas y el dolor lumbar cedió",
        ),
        (
            "disnea de esfuerzo progresiva, ortopnea y edemas maleolares",
            "cardiopatía isquémica con infarto de miocardio previo",
            "ingurgitación yugular, crepitantes bibasales y edemas con fóvea hasta las rodillas",
            "La ecocardiografía transtorácica",
            "un ventrículo izquierdo dilatado con fracción de eyección del 30% e insuficiencia mitral moderada",
            "insuficiencia cardíaca descompensada con fracción de eyección reducida",
            "furosemida intravenosa y después sacubitrilo-valsartán, bisoprolol y espironolactona",
            "perdió 6 kg de líquido y caminó por la planta sin disnea",
        ),
        (
            "una erupción vesicular dolorosa en el hemitórax izquierdo precedida de dolor urente",
            "leucemia linfocítica crónica",
            "vesículas agrupadas sobre base eritematosa siguiendo el dermatoma T5 izquierdo",
            "La reacción en cadena de la polimerasa del líquido vesicular",
            "ADN del virus varicela-zóster",
            "herpes zóster en un paciente inmunodeprimido",
            "aciclovir intravenoso y pregabalina para el dolor neuropático",
            "presentó costras en todas las lesiones al cabo de una semana sin diseminación",
        ),
    ],
    "fr": [
        (
            "une fièvre, une toux productive et une douleur thoracique pleurétique",
            "un diabète de type 2",
            "des crépitants et un souffle tubaire à la base pulmonaire droite",
            "La radiographie thoracique",
            "une condensation dense du lobe inférieur droit avec un petit épanchement parapneumonique",
            "une pneumonie communautaire",
            "de la ceftriaxone intraveineuse et de l'azithromycine orale",
            "est devenu apyrétique en 72 heures et la toux s'est progressivement améliorée",
        ),
        (
            "une douleur abdominale migrant vers la fosse iliaque droite, des nausées et une anorexie",
            "aucune maladie chronique notable",
            "une défense et un rebond dans la fosse iliaque droite",
            "L'échographie abdominale",
            "un appendice non compressible de 11 mm avec une infiltration de la graisse péri-appendiculaire",
            "une appendicite aiguë",
            "une appendicectomie cœlioscopique sous antibioprophylaxie par céfazoline et métronidazole",
            "a récupéré sans complication chirurgicale et a repris une alimentation normale au deuxième jour",
        ),
        (
            "une dyspnée brutale et un œdème du mollet gauche après un long vol",
            "une contraception orale et une obésité",
            "une tachypnée, un mollet gauche tuméfié et douloureux et une auscultation normale",
            "L'angioscanner thoracique",
            "des lacunes endoluminales dans les deux artères pulmonaires lobaires inférieures sans dilatation du ventricule droit",
            "une embolie pulmonaire aiguë avec thrombose veineuse profonde",
            "une héparine de bas poids moléculaire relayée par l'apixaban",
            "a présenté une dyspnée de moins en moins marquée et n'a plus eu besoin d'oxygène",
        ),
        (
            "une polyurie, une polydipsie, des vomissements et une somnolence",
            "un diabète de type 1 avec une mauvaise observance de l'insuline",
            "des muqueuses sèches, une respiration de Kussmaul et une haleine cétonique",
            "La gazométrie artérielle",
            "un pH à 7,08, des bicarbonates à 6 mmol/L, une glycémie à 32 mmol/L et une cétonémie à 5,8 mmol/L",
            "une acidocétose diabétique",
            "une réhydratation intraveineuse, une insuline intraveineuse à débit fixe et une supplémentation potassique",
            "a corrigé son acidose en 18 heures et a repris l'insuline sous-cutanée",
        ),
        (
            "un déficit brutal de l'hémicorps droit et des difficultés à parler",
            "une hypertension artérielle et une fibrillation atriale non anticoagulée",
            "une hémiparésie droite, une paralysie faciale droite et une aphasie d'expression",
            "L'angioscanner cérébral",
            "une occlusion de l'artère cérébrale moyenne gauche sans hémorragie",
            "un accident vasculaire cérébral ischémique aigu",
            "une thrombolyse intraveineuse et une thrombectomie mécanique",
            "a récupéré l'essentiel de la force du bras droit et la parole s'est améliorée avec l'orthophonie",
        ),
        (
            "une fièvre avec frissons, des brûlures mictionnelles et une douleur du flanc droit",
            "des infections urinaires récidivantes",
            "une douleur à l'ébranlement de la fosse lombaire droite",
            "L'échographie rénale",
            "un rein droit discrètement augmenté de taille sans dilatation ni abcès",
            "une pyélonéphrite aiguë à Escherichia coli",
            "de la ceftriaxone intraveineuse relayée par de la ciprofloxacine orale selon l'antibiogramme",
            "a eu des hémocultures négatives à 48 heures et la douleur lombaire a disparu",
        ),
        (
            "une dyspnée d'effort progressive, une orthopnée et des œdèmes des chevilles",
            "une cardiopathie ischémique avec un antécédent d'infarctus du myocarde",
            "une turgescence jugulaire, des crépitants bibasaux et des œdèmes prenant le godet jusqu'aux genoux",
            "L'échocardiographie transthoracique",
            "un ventricule gauche dilaté avec une fraction d'éjection de 30 % et une insuffisance mitrale modérée",
            "une insuffisance cardiaque décompensée à fraction d'éjection réduite",
            "du furosémide intraveineux puis sacubitril-valsartan, bisoprolol et spironolactone",
            "a perdu 6 kg de liquide et a pu marcher dans le service sans dyspnée",
        ),
        (
            "une éruption vésiculeuse douloureuse de l'hémithorax gauche précédée de brûlures",
            "une leucémie lymphoïde chronique",
            "des vésicules groupées en bouquet sur une base érythémateuse suivant le dermatome T5 gauche",
            "La PCR du liquide vésiculaire",
            "de l'ADN du virus varicelle-zona",
            "un zona chez un patient immunodéprimé",
            "de l'aciclovir intraveineux et de la prégabaline pour les douleurs neuropathiques",
            "a présenté des croûtes sur toutes les lésions après une semaine sans dissémination",
        ),
    ],
    "pt": [
        (
            "febre, tosse produtiva e dor torácica pleurítica",
            "diabetes mellitus tipo 2",
            "crepitações e sopro tubário na base pulmonar direita",
            "A radiografia de tórax",
            "uma consolidação densa do lobo inferior direito com um pequeno derrame parapneumónico",
            "pneumonia adquirida na comunidade",
            "ceftriaxona intravenosa e azitromicina oral",
            "ficou apirético em 72 horas e a tosse melhorou progressivamente",
        ),
        (
            "dor abdominal migratória para a fossa ilíaca direita, náuseas e anorexia",
            "nenhuma doença crónica relevante",
            "sinal de Blumberg positivo e defesa no quadrante inferior direito",
            "A ecografia abdominal",
            "um apêndice não compressível de 11 mm com densificação da gordura periapendicular",
            "apendicite aguda",
            "apendicectomia laparoscópica com profilaxia com cefazolina e metronidazol",
            "recuperou sem complicações cirúrgicas e tolerou dieta normal no segundo dia",
        ),
        (
            "dispneia súbita e edema da perna esquerda após um voo longo",
            "uso de contracetivos orais e obesidade",
            "taquipneia, gémeo esquerdo edemaciado e doloroso e auscultação normal",
            "A angiotomografia pulmonar",
            "defeitos de preenchimento em ambas as artérias pulmonares dos lobos inferiores sem dilatação do ventrículo direito",
            "tromboembolismo pulmonar agudo com trombose venosa profunda",
            "heparina de baixo peso molecular seguida de apixabano",
            "teve cada vez menos dispneia e deixou de precisar de oxigénio",
        ),
        (
            "poliúria, polidipsia, vómitos e sonolência",
            "diabetes mellitus tipo 1 com má adesão à insulina",
            "mucosas secas, respiração de Kussmaul e hálito cetónico",
            "A gasometria arterial",
            "um pH de 7,08, bicarbonato de 6 mmol/L, glicemia de 32 mmol/L e cetonemia de 5,8 mmol/L",
            "cetoacidose diabética",
            "fluidoterapia intravenosa, perfusão de insulina em dose fixa e reposição de potássio",
            "resolveu a acidose em 18 horas e retomou a insulina subcutânea",
        ),
        (
            "fraqueza súbita do hemicorpo direito e dificuldade em falar",
            "hipertensão arterial e fibrilhação auricular sem anticoagulação",
            "hemiparesia direita, desvio da comissura labial e afasia de expressão",
            "A angiotomografia cerebral",
            "uma oclusão da artéria cerebral média esquerda sem hemorragia",
            "acidente vascular cerebral isquémico agudo",
            "trombólise intravenosa e trombectomia mecânica",
            "recuperou grande parte da força do braço direito e a fala melhorou com reabilitação",
        ),
        (
            "febre com calafrios, disúria e dor no flanco direito",
            "infeções urinárias de repetição",
            "sinal de Murphy renal positivo à direita",
            "A ecografia renal",
            "um rim direito ligeiramente aumentado sem hidronefrose nem abcesso",
            "pielonefrite aguda por Escherichia coli",
            "ceftriaxona intravenosa substituída por ciprofloxacina oral de acordo com o antibiograma",
            "teve hemoculturas negativas às 48 horas e a dor lombar desapareceu",
        ),
        (
            "dispneia de esforço progressiva, ortopneia e edema dos tornozelos",
            "cardiopatia isquémica com enfarte do miocárdio prévio",
            "turgescência jugular, crepitações bibasais e edema com godet até aos joelhos",
            "O ecocardiograma transtorácico",
            "um ventrículo esquerdo dilatado com fração de ejeção de 30% e insuficiência mitral moderada",
            "insuficiência cardíaca descompensada com fração de ejeção reduzida",
            "furosemida intravenosa e depois sacubitril-valsartan, bisoprolol e espironolactona",
            "perdeu 6 kg de líquido e caminhou na enfermaria sem dispneia",
        ),
        (
            "uma erupção vesicular dolorosa no hemitórax esquerdo precedida de dor em ardor",
            "leucemia linfocítica crónica",
            "vesículas agrupadas sobre base eritematosa no dermátomo T5 esquerdo",
            "A reação em cadeia da polimerase do líquido vesicular",
            "ADN do vírus varicela-zóster",
            "herpes zóster num doente imunodeprimido",
            "aciclovir intravenoso e pregabalina para a dor neuropática",
            "apresentou crostas em todas as lesões ao fim de uma semana sem disseminação",
        ),
    ],
}

PERSON = {
    "en": ("A {age}-year-old man", "A {age}-year-old woman", "the patient", "the patient"),
    "es": ("Un varón de {age} años", "Una mujer de {age} años", "el paciente", "la paciente"),
    "fr": ("Un homme de {age} ans", "Une femme de {age} ans", "le patient", "la patiente"),
    "pt": ("Um homem de {age} anos", "Uma mulher de {age} anos", "o doente", "a doente"),
}

REPORT = {
    "en": [
        "{Person} presented to the emergency department with a {days}-day history of {complaint}.",
        "The past medical history was notable for {history}; there was no known drug allergy and {subj} was a non-smoker.",
        "On admission, the temperature was {temp} °C, heart rate {hr} beats per minute, blood pressure {sbp}/{dbp} mmHg and oxygen saturation {spo2}% on room air.",
        "Physical examination revealed {finding}.",
        "Laboratory tests showed a leukocyte count of {wbc} × 10^9/L, C-reactive protein of {crp} mg/L, creatinine of {creat} µmol/L and haemoglobin of {hb} g/dL.",
        "{test} demonstrated {result}.",
        "Based on the clinical picture and these findings, the diagnosis of {diagnosis} was established.",
        "Treatment with {treatment} was started, together with intravenous fluids and analgesia as needed.",
        "During the hospital stay {subj} {outcome}.",
        "{Subj} was discharged on day {stay} with an outpatient follow-up visit arranged after {fu} weeks, at which {subj} was asymptomatic and the laboratory values had normalised.",
        "This case illustrates the importance of recognising {diagnosis} early in patients with {history}, because delayed treatment is associated with higher morbidity. Clinicians should consider this diagnosis when {complaint} is accompanied by {finding}.",
        "Written informed consent was obtained for the publication of this case.",
    ],
    "es": [
        "{Person} acudió al servicio de urgencias por un cuadro de {days} días de evolución de {complaint}.",
        "Entre sus antecedentes destacaba {history}; no tenía alergias medicamentosas conocidas y no era fumador.",
        "A su llegada presentaba una temperatura de {temp} °C, frecuencia cardíaca de {hr} latidos por minuto, presión arterial de {sbp}/{dbp} mmHg y saturación de oxígeno del {spo2}% con aire ambiente.",
        "En la exploración física se objetivó {finding}.",
        "La analítica mostró {wbc} × 10^9/L leucocitos, proteína C reactiva de {crp} mg/L, creatinina de {creat} µmol/L y hemoglobina de {hb} g/dL.",
        "{test} mostró {result}.",
        "Con el cuadro clínico y estos hallazgos se estableció el diagnóstico de {diagnosis}.",
        "Se inició tratamiento con {treatment}, junto con sueroterapia intravenosa y analgesia según necesidad.",
        "Durante el ingreso {subj} {outcome}.",
        "Fue dado de alta el día {stay} con una revisión ambulatoria a las {fu} semanas, en la que {subj} estaba asintomático y las analíticas se habían normalizado.",
        "Este caso ilustra la importancia de reconocer precozmente la {diagnosis} en pacientes con {history}, ya que el retraso terapéutico se asocia a mayor morbilidad. Debe considerarse este diagnóstico cuando {complaint} se acompaña de {finding}.",
        "Se obtuvo el consentimiento informado por escrito para la publicación de este caso.",
    ],
    "fr": [
        "{Person} a consulté aux urgences pour {complaint} évoluant depuis {days} jours.",
        "Ses antécédents comprenaient {history} ; aucune allergie médicamenteuse connue n'était rapportée et le tabagisme était absent.",
        "À l'admission, la température était de {temp} °C, la fréquence cardiaque de {hr} battements par minute, la pression artérielle de {sbp}/{dbp} mmHg et la saturation en oxygène de {spo2} % en air ambiant.",
        "L'examen clinique retrouvait {finding}.",
        "Le bilan biologique montrait {wbc} × 10^9/L leucocytes, une protéine C réactive à {crp} mg/L, une créatinine à {creat} µmol/L et une hémoglobine à {hb} g/dL.",
        "{test} a mis en évidence {result}.",
        "Devant ce tableau clinique et ces résultats, le diagnostic retenu était {diagnosis}.",
        "Un traitement par {treatment} a été débuté, associé à une hydratation intraveineuse et à une analgésie adaptée.",
        "Au cours de l'hospitalisation, {subj} {outcome}.",
        "La sortie a eu lieu au jour {stay} avec une consultation de suivi à {fu} semaines, lors de laquelle {subj} était asymptomatique et le bilan biologique normalisé.",
        "Ce cas souligne l'importance de reconnaître précocement {diagnosis} chez les patients ayant {history}, car un retard thérapeutique est associé à une morbidité accrue. Ce diagnostic doit être évoqué quand {complaint} s'accompagne de {finding}.",
        "Un consentement éclairé écrit a été obtenu pour la publication de ce cas.",
    ],
    "pt": [
        "{Person} recorreu ao serviço de urgência por um quadro com {days} dias de evolução de {complaint}.",
        "Dos antecedentes destacava-se {history}; não tinha alergias medicamentosas conhecidas e não era fumador.",
        "À admissão apresentava temperatura de {temp} °C, frequência cardíaca de {hr} batimentos por minuto, pressão arterial de {sbp}/{dbp} mmHg e saturação de oxigénio de {spo2}% em ar ambiente.",
        "O exame objetivo revelou {finding}.",
        "As análises mostraram {wbc} × 10^9/L leucócitos, proteína C reativa de {crp} mg/L, creatinina de {creat} µmol/L e hemoglobina de {hb} g/dL.",
        "{test} demonstrou {result}.",
        "Com base no quadro clínico e nestes achados foi estabelecido o diagnóstico de {diagnosis}.",
        "Iniciou-se tratamento com {treatment}, juntamente com fluidoterapia intravenosa e analgesia conforme necessário.",
        "Durante o internamento {subj} {outcome}.",
        "Teve alta ao dia {stay} com consulta de seguimento às {fu} semanas, na qual {subj} estava assintomático e as análises tinham normalizado.",
        "Este caso ilustra a importância de reconhecer precocemente {diagnosis} em doentes com {history}, pois o atraso terapêutico associa-se a maior morbilidade. Deve considerar-se este diagnóstico quando {complaint} se acompanha de {finding}.",
        "Foi obtido consentimento informado escrito para a publicação deste caso.",
    ],
}

SUMMARY = {
    "en": "{Person} with {history} presented with {complaint} for {days} days. {test} showed {result}, and {diagnosis} was diagnosed. Treatment with {treatment} was given; {subj} {outcome} and was discharged on day {stay}.",
    "es": "{Person} con {history} consultó por {complaint} de {days} días de evolución. {test} mostró {result} y se diagnosticó {diagnosis}. Se trató con {treatment}; {subj} {outcome} y fue dado de alta el día {stay}.",
    "fr": "{Person} ayant comme antécédent {history} a consulté pour {complaint} depuis {days} jours. {test} a montré {result} et le diagnostic retenu était {diagnosis}. Sous {treatment}, {subj} {outcome} ; la sortie a eu lieu au jour {stay}.",
    "pt": "{Person} com {history} recorreu por {complaint} com {days} dias de evolução. {test} mostrou {result} e foi diagnosticada {diagnosis}. Tratado com {treatment}, {subj} {outcome} e teve alta ao dia {stay}.",
}


def case(lang: str, index: int) -> tuple[str, str]:
    rng = random.Random(f"{lang}-{index}")
    complaint, history, finding, test, result, diagnosis, treatment, outcome = SCENARIOS[lang][index % 8]
    female = rng.random() < 0.5
    person = PERSON[lang][1 if female else 0].format(age=rng.randint(19, 88))
    subj = PERSON[lang][3 if female else 2]
    values = dict(
        Person=person,
        subj=subj,
        Subj=subj[:1].upper() + subj[1:],
        complaint=complaint,
        history=history,
        finding=finding,
        test=test,
        result=result,
        diagnosis=diagnosis,
        treatment=treatment,
        outcome=outcome,
        days=rng.randint(1, 14),
        temp=f"{rng.uniform(36.4, 39.6):.1f}",
        hr=rng.randint(62, 128),
        sbp=rng.randint(95, 175),
        dbp=rng.randint(55, 100),
        spo2=rng.randint(86, 99),
        wbc=f"{rng.uniform(4, 22):.1f}",
        crp=rng.randint(3, 310),
        creat=rng.randint(54, 190),
        hb=f"{rng.uniform(9.5, 16.5):.1f}",
        stay=rng.randint(2, 15),
        fu=rng.choice([2, 4, 6, 8]),
    )
    if lang != "en":
        for key in ("temp", "wbc", "hb"):
            values[key] = values[key].replace(".", ",")
    report = " ".join(s.format(**values) for s in REPORT[lang])
    paragraphs = [report]
    return "\n\n".join(paragraphs) + "\n", SUMMARY[lang].format(**values) + "\n"


def main(out: Path) -> None:
    readme = out / "README.md"
    out.mkdir(parents=True, exist_ok=True)
    readme.write_text(
        "# SYNTHETIC sample corpus (MultiClinSum layout)\n\n"
        "Every case report and summary here was generated from templates by `scripts/make_sample_corpus.py`.\n"
        "They describe no real patient and are not from MultiClinSum; they only mimic its folder layout,\n"
        "languages (en, es, fr, pt) and lengths, for the demo and the tests.\n",
        encoding="utf-8",
    )
    for lang in SCENARIOS:
        folder = out / f"multiclinsum_gs_train_{lang}"
        for sub in ("fulltext", "summaries"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        for i in range(1, 11):
            text, summary = case(lang, i)
            name = f"multiclinsum_gs_{lang}_{i}"
            (folder / "fulltext" / f"{name}.txt").write_text(text, encoding="utf-8")
            (folder / "summaries" / f"{name}_sum.txt").write_text(summary, encoding="utf-8")


if __name__ == "__main__":
    main(
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[1] / "examples" / "multiclinsum_sample"
    )
